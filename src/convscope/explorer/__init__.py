"""The explorer: a local web page for looking inside a model (needs ``convscope[explorer]``: Flask, Pillow).

    convscope explore runs/mnist-full            # or a .convscope file

Modules: ``workspace`` (the model, test images and run folder being served),
``compute`` (the numbers, from ``model.trace``), ``inputs`` (checks on what the
page sends), ``api`` (the JSON routes), ``server`` (the app, its safety checks,
serving), ``cli`` (the command); ``static/`` holds the page (plain HTML, CSS, JS).
"""
