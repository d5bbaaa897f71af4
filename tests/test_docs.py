"""The documentation is checked like code: every name it cites exists, every test it cites exists,
and every identity test is written down in docs/theory.md.

- every ``minimalscore.module.name`` in docs/*.md and README.md imports and resolves;
- every ``tests/test_x.py::test_name`` there is a function defined in that file;
- every test marked ``@pytest.mark.identity`` appears in docs/theory.md, so a new identity
  test without its line in the theory fails here, and so does a theory line whose test is gone;
- every ``docs/theory.md §N`` cited in the package, examples, bench, tests or docs is a heading.

Tests are found by parsing the test files (ast), not by importing them: nothing runs.
"""
import ast
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
THEORY = ROOT / "docs" / "theory.md"

NAME = re.compile(r"\bminimalscore(?:\.[A-Za-z_]\w*)+")
TEST_REF = re.compile(r"\btests/(test_\w+\.py)::(test_\w+)")
SECTION_REF = re.compile(r"docs/theory\.md((?:\s*(?:,|-|–|and)?\s*§\d+)+)")
HEADING = re.compile(r"^#+\s*§(\d+)\b", re.MULTILINE)


def resolve(dotted):
    """The object a dotted name denotes: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)  # AttributeError: the name dangles
        return obj
    raise ImportError(dotted)


def dangling_names(text):
    """The minimalscore.* names in ``text`` that do not resolve."""
    missing = []
    for dotted in sorted(set(NAME.findall(text))):
        try:
            resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
    return missing


def is_identity_mark(node):
    """True for the decorator expression ``pytest.mark.identity`` (called or not)."""
    node = node.func if isinstance(node, ast.Call) else node
    return (isinstance(node, ast.Attribute) and node.attr == "identity"
            and isinstance(node.value, ast.Attribute) and node.value.attr == "mark")


def functions_in(source):
    """{name: is an identity test} for the module-level test functions of a test file's source;
    a module-level ``pytestmark`` naming the marker marks them all."""
    tree = ast.parse(source)
    marked_module = any(isinstance(node, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
                        and any(is_identity_mark(n) for n in ast.walk(node.value))
                        for node in tree.body)
    return {node.name: marked_module or any(is_identity_mark(d) for d in node.decorator_list)
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def all_tests():
    """{"tests/file.py::name": is an identity test} over every test file."""
    found = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for name, identity in functions_in(path.read_text(encoding="utf-8")).items():
            found[f"tests/{path.name}::{name}"] = identity
    return found


def cited_tests(text):
    return {f"tests/{f}::{name}" for f, name in TEST_REF.findall(text)}


def cited_sections(text):
    return {int(n) for group in SECTION_REF.findall(text) for n in re.findall(r"§(\d+)", group)}


def doc_texts():
    return {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in DOCS}


# ------------------------------------------------------------ the checks on the repository
def test_the_docs_exist():
    assert THEORY.exists() and (ROOT / "docs" / "conventions.md").exists()


@pytest.mark.parametrize("doc", [p.relative_to(ROOT).as_posix() for p in DOCS])
def test_every_cited_name_resolves(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert NAME.search(text) or doc == "README.md", f"{doc} cites no minimalscore name at all"
    missing = dangling_names(text)
    assert not missing, f"{doc} cites names that do not exist: {missing}"


@pytest.mark.parametrize("doc", [p.relative_to(ROOT).as_posix() for p in DOCS])
def test_every_cited_test_exists(doc):
    missing = sorted(cited_tests((ROOT / doc).read_text(encoding="utf-8")) - set(all_tests()))
    assert not missing, f"{doc} cites tests that do not exist: {missing}"


def test_every_identity_test_is_in_the_theory():
    identity = {ref for ref, marked in all_tests().items() if marked}
    assert len(identity) >= 40, "the identity marker is missing from the test files"
    missing = sorted(identity - cited_tests(THEORY.read_text(encoding="utf-8")))
    assert not missing, f"identity tests without a line in docs/theory.md: {missing}"


def test_every_cited_theory_section_exists():
    headings = {int(n) for n in HEADING.findall(THEORY.read_text(encoding="utf-8"))}
    sources = [p for folder in ("minimalscore", "examples", "bench", "tests")
               for p in (ROOT / folder).rglob("*.py")] + DOCS
    missing = {}
    for path in sources:
        absent = cited_sections(path.read_text(encoding="utf-8")) - headings
        if absent:
            missing[path.relative_to(ROOT).as_posix()] = sorted(absent)
    assert not missing, f"citations of docs/theory.md sections that are not headings there: {missing}"


# ------------------------------------------------------------ the checks have teeth
def test_a_dangling_name_is_reported():
    text = "see `minimalscore.objectives.dsm` and `minimalscore.objectives.no_such_loss`."
    assert dangling_names(text) == ["minimalscore.objectives.no_such_loss"]
    assert dangling_names("`minimalscore.no_such_module.f`") == ["minimalscore.no_such_module.f"]


def test_identity_marks_are_read_from_the_source():
    source = ("import pytest\n@pytest.mark.identity\n@pytest.mark.parametrize('a', [1])\n"
              "def test_marked(a): pass\n\n@pytest.mark.slow\ndef test_plain(): pass\n")
    assert functions_in(source) == {"test_marked": True, "test_plain": False}
    assert functions_in("import pytest\npytestmark = [pytest.mark.identity]\ndef test_a(): pass\n") \
        == {"test_a": True}


def test_a_removed_test_is_reported():
    tests = all_tests()
    some = next(ref for ref, marked in tests.items() if marked)
    text = f"checked by `{some}` and by `tests/test_objectives.py::test_that_was_deleted`"
    assert cited_tests(text) - set(tests) == {"tests/test_objectives.py::test_that_was_deleted"}


def test_section_citations_are_parsed():
    assert cited_sections("(docs/theory.md §2-§4, §10) and docs/theory.md §7.") == {2, 4, 7, 10}
