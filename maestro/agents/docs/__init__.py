"""The docs workcell: docstrings and a Markdown page for modules, with every example run and every
repository link checked, and the code itself provably unchanged."""
