"""Perturbations, one per module, each registered through ``simgate_register_perturbations``.

Composition order within an episode (fixed, whatever the order in the scenario file):

1. ``model`` stage, on a fresh copy of the nominal model, before the initial state is drawn;
2. the env's reset draws the initial state; then ``state`` stage perturbations;
3. every control step: ``observation`` perturbations (in file order) on what the policy sees,
   then the policy, then ``action`` perturbations (in file order) on what reaches the motors;
4. every physics step: ``force`` perturbations write ``xfrc_applied``.

Within a stage, perturbations compose in the order the scenario lists them.
"""

STAGES = ("model", "state", "observation", "action", "force")
