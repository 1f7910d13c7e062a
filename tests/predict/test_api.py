import sigma.predict


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff keeps `__all__` in."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_public_names_are_exported_sorted():
    assert sigma.predict.__all__ == sorted(sigma.predict.__all__, key=isort_style)
    for name in sigma.predict.__all__:
        assert hasattr(sigma.predict, name)
