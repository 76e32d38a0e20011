"""Testing support: the pytest plugin (``project.testing.plugin``) and its databases."""
