import matplotlib

matplotlib.use("Agg")  # figures go to files, never windows
