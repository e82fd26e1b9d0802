"""A small app shaped like Open-LLM-VTuber 1.2 (same modules, classes and
construction sequence), for leaklab's ``olv`` profile tests.

It has one planted leak: ``ServiceContext.handle_config_switch`` starts an
untracked warm-up task that holds the context until the user's first turn.
"""
