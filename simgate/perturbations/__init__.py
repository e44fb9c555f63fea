"""Perturbations, one per module, each registered through ``simgate_register_perturbations``.

Composition order within a case and an episode (fixed, whatever the order in the scenario file;
within one stage, perturbations compose in the order the file lists them):

1. ``spec``: once per case, structural edits of the model (terrain) before it compiles;
2. ``model``: per episode, on a fresh copy of the nominal model (friction, mass, motors,
   damping, gravity, slope), followed by ``mj_setConst``; each edits the model as the previous
   one left it, so ``scale_body_mass`` then ``add_payload`` is a heavier robot carrying a payload;
   then the env draws the initial state;
3. ``state``: per episode, on the initial state (joint position and velocity noise);
4. every control step: ``observation`` perturbations on what the policy sees, the policy, then
   ``action`` perturbations on what is commanded; the env maps the action onto ``ctrl``;
5. every physics step, before ``mj_step``: ``action`` perturbations that act at physics rate
   (latency, motor dropout) rewrite ``ctrl``, then ``force`` perturbations write ``xfrc_applied``;
   such a hook may also define ``physics_block`` (see ``Perturbation.physics_block``) to plan a
   whole control step's physics steps in one call.

A control-rate change applies to the whole case (it sets the physics steps per control step).
"""

STAGES = ("spec", "model", "state", "observation", "action", "force")
