"""Parameter trees: nested dicts / lists / tuples of arrays, walked leaf by leaf."""


def tree_map(f, tree, *rest):
    """Apply ``f`` leaf-wise over matching nested dicts / lists / tuples of arrays."""
    if isinstance(tree, dict):
        return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(f, *leaves) for leaves in zip(tree, *rest))
    return f(tree, *rest)


def tree_leaves(tree):
    """The arrays of a parameter tree, in a fixed order."""
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in tree_leaves(t)]
    return [tree]


def tree_paths(tree, root):
    """(path, leaf) for every leaf, in tree order; a path reads as Python would index the tree
    from ``root``: ``params['layers'][0]['W']``."""
    if isinstance(tree, dict):
        return [p for key in tree for p in tree_paths(tree[key], f"{root}[{key!r}]")]
    if isinstance(tree, (list, tuple)):
        return [p for i, item in enumerate(tree) for p in tree_paths(item, f"{root}[{i}]")]
    return [(root, tree)]


def count_params(tree):
    """The number of scalars in a parameter tree."""
    return sum(int(leaf.size) for leaf in tree_leaves(tree))
