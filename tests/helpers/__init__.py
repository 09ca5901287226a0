"""Shared test helpers: no tests here, and no test module imports another."""
