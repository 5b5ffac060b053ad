"""A no-op ext_authz server: grpc.aio + uvloop, answers every Check with OK. Set-up (b) of
`make bench`: the cost of the stack itself (Envoy's ext_authz call into a Python gRPC
server), which our service cannot beat.

    python bench/noop_authz.py --port 9001
"""

from __future__ import annotations

import argparse

import uvloop
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2, status_pb2
from grpc import aio

_OK = external_auth_pb2.CheckResponse(
    status=status_pb2.Status(code=code_pb2.OK), ok_response=external_auth_pb2.OkHttpResponse()
)


class Noop(external_auth_pb2_grpc.AuthorizationServicer):
    async def Check(self, request, context):
        return _OK


async def serve(port: int) -> None:
    server = aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(Noop(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))
