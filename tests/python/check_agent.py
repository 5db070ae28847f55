"""Prove that a non-Rust gRPC client can use the agent: list services through
server reflection (v1alpha, the version grpcurl 1.8 speaks, and v1), check
health, and call AgentService.GetInfo with messages built from the reflected
descriptors alone (no generated code). Prints one JSON object.

Usage: check_agent.py SOCKET_PATH
"""

import json
import sys

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha, reflection_pb2_grpc as v1alpha_grpc

from reflected import load_pool


def reflect(channel, request, stub_module, message_module):
    stub = stub_module.ServerReflectionStub(channel)
    return next(iter(stub.ServerReflectionInfo(iter([request]))))


def main():
    socket = sys.argv[1]
    # The HTTP/2 layer under tonic rejects a socket path as :authority.
    channel = grpc.insecure_channel(
        f"unix:{socket}", options=[("grpc.default_authority", "localhost")]
    )
    listed = reflect(
        channel,
        v1alpha.ServerReflectionRequest(list_services=""),
        v1alpha_grpc,
        v1alpha,
    )
    services = sorted(s.name for s in listed.list_services_response.service)

    # grpcio-reflection ships only v1alpha stubs; v1's messages are
    # wire-identical, so call the v1 method with the v1alpha classes.
    v1_call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=v1alpha.ServerReflectionRequest.SerializeToString,
        response_deserializer=v1alpha.ServerReflectionResponse.FromString,
    )
    listed_v1 = next(iter(v1_call(iter([v1alpha.ServerReflectionRequest(list_services="")]))))
    services_v1 = sorted(s.name for s in listed_v1.list_services_response.service)

    health = health_pb2_grpc.HealthStub(channel)
    statuses = {}
    for name in ["", "omnipanel.v1.AgentService"]:
        reply = health.Check(health_pb2.HealthCheckRequest(service=name))
        statuses[name or "(server)"] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    pool = load_pool(channel, ["omnipanel.v1.AgentService"])
    method = pool.FindMethodByName("omnipanel.v1.AgentService.GetInfo")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        "/omnipanel.v1.AgentService/GetInfo",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    info, call_state = call.with_call(request_class())
    headers = dict(call_state.initial_metadata())
    doc = method.containing_service.full_name
    print(
        json.dumps(
            {
                "services": services,
                "services_v1": services_v1,
                "health": statuses,
                "version": info.version,
                "protocol_version": info.protocol_version,
                "pid": info.pid,
                "version_header": headers.get("omnipanel-version"),
                "service": doc,
            }
        )
    )


if __name__ == "__main__":
    main()
