"""Plain-data YAML files read with a line for every key (:mod:`simgate.yamlfile.lines`) and their
schema errors reported at those lines (:mod:`simgate.yamlfile.errors`).

A leaf shared by scenarios, policy manifests and robot files: it imports none of them."""
