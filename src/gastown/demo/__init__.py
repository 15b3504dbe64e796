"""The demo: a sample repository, the work to do on it, and a scripted stand-in agent.

Nothing here calls a model.  :mod:`.agent` behaves like a disciplined coding
agent (prime, claim, edit, commit, close, wait to be told what is next, done);
:mod:`.playbook` is its "judgement" -- what each step of each formula writes;
:mod:`.sample` is the small project the demo town works on; :mod:`.run` drives
``gt demo``.
"""
