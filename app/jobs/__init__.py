"""The job engine: answer within the reply budget, deliver late answers, recover orphaned work."""
