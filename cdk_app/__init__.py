"""The bundled AWS CDK app (``app.py`` wires, ``nimbus_stack.py`` holds the stack).

Shipped in the wheel as ``nimbus_jupyter.cdk_app``; ``nimbus_jupyter.targets.aws.app_location`` finds it in
both a wheel and a source checkout. Importing this package does not import aws-cdk-lib.
"""
