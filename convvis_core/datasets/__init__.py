"""Datasets to scan for a filter's strongest examples: photos and digits that ship inside installed
packages, Fashion-MNIST from its Debian package, an uploaded .zip, or an operator-enabled folder.
``catalog.open_dataset`` turns a name or path into a :class:`base.Dataset`."""
