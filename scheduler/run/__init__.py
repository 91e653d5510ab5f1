"""The runner's parts, each handed its collaborators (scheduler/runner.py composes them):

executor   claim -> resolve targets -> plan -> pipelines -> settle; observers per call
pipeline   one target's chain of tasks; asks the policy what comes next
policy     pure decisions: an error's fate, retries, next step, run and task status
leases     run control and heartbeats; environment locks and their keeper
follow     follows an operation, records it, feeds the duration learner
context    what an action may use (ActionContext); knows nothing of the executor
"""
