from sigma.agent.images import add_parser

__all__ = ["add_parser"]
