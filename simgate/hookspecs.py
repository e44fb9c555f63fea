"""Every extension point of simgate. Mark implementations with ``simgate.hookimpl``
(``from simgate import hookimpl``) in a module, and register that module through the ``simgate``
entry-point group of a package (``[project.entry-points.simgate]``) or list it in
``simgate_plugins`` of a ``conftest.py``. Built-ins use these same hooks.

Hooks are called with keyword arguments; an implementation may accept a subset of them. The
names a plugin needs are exported by ``simgate`` itself: ``hookimpl``, ``MujocoEnv``,
``PolicySpec``, ``register_manifests``, ``Perturbation`` (with ``Params`` and
``EpisodeContext``) and ``SimgateError`` (raise it with a message naming the fix: it is printed
without a traceback). README's "Writing a plugin" is a complete example package.
"""

import pluggy

hookspec = pluggy.HookspecMarker("simgate")


@hookspec
def simgate_register_envs(registry):
    """Add environments: ``registry.add(name, factory)``.

    Called once when the plugin manager is set up (collection time, every xdist worker).
    ``factory`` is a zero-argument callable, or a ``"module:callable"`` string, returning a
    :class:`simgate.MujocoEnv` (its docstrings state when each rule is called and with which
    model); it is called only when a case runs, so heavy imports belong inside it. Returns
    nothing.
    """


@hookspec
def simgate_register_policies(registry):
    """Add policies: ``registry.add(name, spec)`` with a :class:`simgate.PolicySpec`, or
    ``simgate.register_manifests(registry, folder)``, which registers every
    ``folder/*/manifest.yaml`` (README's "Adding a policy" shows the format).

    Called once at set-up. A spec names its env, its format (``onnx``, ``torchscript``,
    ``scripted``), its file or callable and the manifest it came from; nothing is loaded until a
    case runs. Returns nothing.
    """


@hookspec
def simgate_register_perturbations(registry):
    """Add perturbation kinds: ``registry.add(kind, cls)``, ``cls`` a subclass of
    :class:`simgate.Perturbation` with a ``Params`` schema (a subclass of ``simgate.Params``).

    Called once at set-up; scenario files name these kinds. Returns nothing.
    """


@hookspec
def simgate_register_metrics(registry):
    """Add per-episode metrics: ``registry.add(name, fn)``, ``fn(rollouts) -> np.ndarray``
    with one value per episode. Called once at set-up. Returns nothing.
    """


@hookspec(firstresult=True)
def simgate_classify_failure(case, episode):
    """Name why a failed episode failed.

    ``case`` is the :class:`simgate.scenarios.case.Case`, ``episode`` an
    :class:`simgate.engine.rollouts.Episode`. Return a short mode name (``"fell"``,
    ``"diverged"``, ...) or None to let the next rule decide. The first non-None answer wins;
    the built-in rules run last, so a plugin can add a mode or override a built-in one.
    """


@hookspec
def simgate_episode_batch_done(case, rollouts):
    """Observe the finished episodes of a case (videos, extra attachments).

    Called in the worker that ran the case, after the engine returns. Returns nothing.
    """
