"""Test doubles of systems that cannot run on the development machines. Never imported by the product."""
