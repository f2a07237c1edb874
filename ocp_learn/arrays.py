"""Array-module helpers: the namespace (``xp``) of the arrays a computation receives."""
