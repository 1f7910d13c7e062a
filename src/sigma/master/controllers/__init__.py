"""The master's controllers; sigma.master.wiring builds the ones a master runs."""
