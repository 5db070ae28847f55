"""The agent's descriptors through server reflection, the way grpcurl gets
them: fetch the files defining some services, then every dependency by name,
and add them to a pool dependencies first. Shared by the Python test clients,
which build their messages from these descriptors alone."""

from google.protobuf import descriptor_pool
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2 as reflection, reflection_pb2_grpc as reflection_grpc


def load_pool(channel, services):
    """A descriptor pool holding `services` and everything they use."""
    stub = reflection_grpc.ServerReflectionStub(channel)

    def fetch(request):
        reply = next(iter(stub.ServerReflectionInfo(iter([request]))))
        return [FileDescriptorProto.FromString(raw) for raw in reply.file_descriptor_response.file_descriptor_proto]

    files = {}
    queue = []
    for service in services:
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
