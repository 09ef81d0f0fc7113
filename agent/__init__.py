"""erarm's agent, installed as `erarm.agent`: perceive, locate, plan, validate, execute, verify."""
