"""Architectures: what a learner builds, checks, saves and takes home, one module per concept.

    layers       the layer types and their settings: the one registry
    presets      the ready-made architectures (the notebook's nets and two fast ones), read from presets.toml
    validation   a layer's settings checked and filled in; ArchitectureError
    report       output shapes, parameters and multiply-adds, and the limits on them
    building     the Keras model of an architecture
    json_format  export and import as JSON
    sources      where an architecture comes from (preset, saved, edited, imported), as a run stores it
    saved        saved architectures on disk, with their owners
    edits        edits of a layer list (add, move, remove, change a setting)
    editor       the Architecture page's logic and session state
    keras_code   the self-contained Keras script of an architecture and its training settings
    teaching     teaching notes about an architecture and its edits
"""
