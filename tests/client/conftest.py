from tests.cli.conftest import client, namespace, sigma_master

__all__ = ["client", "namespace", "sigma_master"]
