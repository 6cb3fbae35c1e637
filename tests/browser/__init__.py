"""Browser tests: a package, so that its conftest.py is not the module ``conftest`` that tests/conftest.py is."""
