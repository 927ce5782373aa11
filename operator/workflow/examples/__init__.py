"""Small sample functions for the documentation, the demo and the tests."""
