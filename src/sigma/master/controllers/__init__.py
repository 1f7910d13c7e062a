"""The master's controllers. Importing this package registers each of them with
sigma.master.process.register_controller."""
