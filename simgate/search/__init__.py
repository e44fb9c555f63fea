"""Search a box of perturbation params for where a policy fails (docs/search.md): failure boundaries
per axis, each checked on fresh seeds, and jointly with a fitted risk model, counterexamples
shrunk toward nominal, Sobol sensitivity, and a certified operating envelope. Nothing heavy is
imported here."""
