"""Name a parameter in a message the way the dialog and ``qgis_process`` show it."""


def parameter_label(algorithm, name):
    """``'Pre-event image (PRE_IMAGE)'``: the dialog's label and the id scripts use."""
    definition = algorithm.parameterDefinition(name)
    description = definition.description() if definition is not None else name
    return f"{description} ({name})"
