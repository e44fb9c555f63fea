import importlib

from simgate.classify import ORDER
from simgate.plugin_manager import hookimpl

_RULES = [importlib.import_module(name).classify for name in ORDER]


@hookimpl(trylast=True)
def simgate_classify_failure(case, episode):
    for rule in _RULES:
        mode = rule(case, episode)
        if mode is not None:
            return mode
    return None
