"""A client that was never admitted, written with plain grpcio and messages
built from reflected descriptors alone: it is refused project contents, asks
for access, waits for the user, then writes with its token inside the granted
project and is refused in another, and watches until its access is revoked.
Each step prints one JSON line (flushed) for tests/e2e/admission.rs to read.

Usage: admission_client.py SOCKET_PATH GRANTED_PROJECT OTHER_PROJECT
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2 as reflection, reflection_pb2_grpc as reflection_grpc


def say(**fields):
    print(json.dumps(fields), flush=True)


def load_pool(channel):
    stub = reflection_grpc.ServerReflectionStub(channel)

    def fetch(request):
        reply = next(iter(stub.ServerReflectionInfo(iter([request]))))
        return [FileDescriptorProto.FromString(raw) for raw in reply.file_descriptor_response.file_descriptor_proto]

    files = {}
    queue = []
    for service in ["omnipanel.v1.AgentService", "omnipanel.v1.FileService"]:
        queue.extend(fetch(reflection.ServerReflectionRequest(file_containing_symbol=service)))
    while queue:
        proto = queue.pop()
        if proto.name in files:
            continue
        files[proto.name] = proto
        for dependency in proto.dependency:
            if dependency not in files:
                queue.extend(fetch(reflection.ServerReflectionRequest(file_by_filename=dependency)))
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


class Api:
    def __init__(self, channel, pool):
        self.channel = channel
        self.pool = pool

    def method(self, full_name):
        method = self.pool.FindMethodByName(full_name)
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        service, name = full_name.rsplit(".", 1)
        path = f"/{service}/{name}"
        kind = self.channel.unary_stream if method.server_streaming else self.channel.unary_unary
        call = kind(path, request_serializer=request.SerializeToString, response_deserializer=response.FromString)
        return call, request

    def unary(self, full_name, metadata=(), **fields):
        call, request = self.method(full_name)
        return call(request(**fields), metadata=metadata)

    def stream(self, full_name, metadata=(), **fields):
        call, request = self.method(full_name)
        return call(request(**fields), metadata=metadata)


def code_of(call):
    try:
        call()
        return "OK", ""
    except grpc.RpcError as err:
        return err.code().name, err.details()


def main():
    socket, granted, other = sys.argv[1:4]
    channel = grpc.insecure_channel(f"unix:{socket}", options=[("grpc.default_authority", "localhost")])
    api = Api(channel, load_pool(channel))

    info = api.unary("omnipanel.v1.AgentService.GetInfo")
    read, read_message = code_of(lambda: list(api.stream("omnipanel.v1.FileService.ReadFile", project=granted, path="hello.txt")))
    write, write_message = code_of(
        lambda: api.unary("omnipanel.v1.FileService.WriteFile", project=granted, path="x.txt", content=b"no")
    )
    say(step="not_admitted", version=info.version, owner=info.caller_is_owner, read=read, read_message=read_message, write=write, write_message=write_message)

    request_access = api.stream(
        "omnipanel.v1.AgentService.RequestAccess",
        client_name="Python script",
        scopes=[api.pool.FindEnumTypeByName("omnipanel.v1.Scope").values_by_name["SCOPE_WRITE"].number],
        projects=[granted],
        reason="an e2e test",
    )
    token = ""
    state_names = api.pool.FindEnumTypeByName("omnipanel.v1.AccessRequestState").values_by_number
    for update in request_access:
        state = state_names[update.request.state].name
        if state == "ACCESS_REQUEST_STATE_PENDING":
            pid = update.request.peer.processes[0].pid if update.request.peer.processes else 0
            say(step="pending", id=update.request.id, code=update.request.code, pid=pid)
        else:
            token = update.token
            say(step="answered", state=state, has_token=bool(token), client_id=update.client.id)
            break
    if not token:
        return

    auth = (("authorization", f"Bearer {token}"),)
    granted_write, _ = code_of(
        lambda: api.unary("omnipanel.v1.FileService.WriteFile", metadata=auth, project=granted, path="from-python.txt", content=b"hello from python")
    )
    other_write, other_message = code_of(
        lambda: api.unary("omnipanel.v1.FileService.WriteFile", metadata=auth, project=other, path="from-python.txt", content=b"should not land")
    )
    say(step="writes", granted=granted_write, other=other_write, other_message=other_message)

    watch = api.stream("omnipanel.v1.FileService.Watch", metadata=auth, project=granted)
    # The headers arrive once the agent has accepted the stream.
    watch.initial_metadata()
    say(step="watching")
    try:
        for _ in watch:
            pass
        say(step="watch_ended", code="OK", message="")
    except grpc.RpcError as err:
        say(step="watch_ended", code=err.code().name, message=err.details())


if __name__ == "__main__":
    main()
