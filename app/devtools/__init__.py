"""Tools for a developer's desk and for the tests: the WeCom simulator and the fake WeCom API."""
