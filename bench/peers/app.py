"""The benchmark's hello handler, for the peers (serverless-offline and awslambdaric)."""


def handler(event, context):
    return {"message": "hello"}
