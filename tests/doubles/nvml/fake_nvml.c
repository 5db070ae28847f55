/*
 * A fake NVIDIA driver library (libnvidia-ml) for the tests of the agent's
 * GPU reading (agent/core/src/system/gpu.rs and the e2e `cli_terminal`
 * tests): the NVML functions the agent calls, answering for two made-up
 * GPUs, so the path that reads real GPUs runs on a machine without one.
 * The tests build it with `cc -shared -fPIC`, choosing how the "driver"
 * behaves with one -D switch:
 *
 *   (none)                  two GPUs; GPU 0 answers everything and lists
 *                           processes, GPU 1 supports only name and memory
 *   FAKE_NVML_NO_GPU        the driver loads and reports no GPU
 *   FAKE_NVML_NOT_LOADED    nvmlInit_v2 says the driver is not loaded
 *   FAKE_NVML_INIT_FAILS    nvmlInit_v2 fails with an unknown error
 *   FAKE_NVML_COUNT_FAILS   counting the GPUs fails
 *   FAKE_NVML_OPEN_FAILS    GPU 1 cannot be opened
 *
 * The values are NVML's: return codes from nvml.h, structures as
 * nvml-wrapper-sys lays them out.
 */
#include <stdint.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_UNKNOWN = 999,
};

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

/* NVML_VALUE_NOT_AVAILABLE as a 64-bit value: memory use not known. */
#define NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL
#define GIB (1024ULL * 1024 * 1024)

/* A device handle is its index plus one (never null). */
static int device_index(nvmlDevice_t device) { return (int)(intptr_t)device - 1; }

static nvmlReturn_t copy_text(char *out, unsigned int length, const char *text) {
    if (out == NULL || length <= strlen(text)) {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    strcpy(out, text);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
#if defined(FAKE_NVML_NOT_LOADED)
    return NVML_ERROR_DRIVER_NOT_LOADED;
#elif defined(FAKE_NVML_INIT_FAILS)
    return NVML_ERROR_UNKNOWN;
#else
    return NVML_SUCCESS;
#endif
}

nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    default: return "Fake Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    return copy_text(version, length, "999.1.2-fake");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
#if defined(FAKE_NVML_COUNT_FAILS)
    (void)count;
    return NVML_ERROR_UNKNOWN;
#elif defined(FAKE_NVML_NO_GPU)
    *count = 0;
    return NVML_SUCCESS;
#else
    *count = 2;
    return NVML_SUCCESS;
#endif
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
#if defined(FAKE_NVML_OPEN_FAILS)
    if (index == 1) {
        return NVML_ERROR_UNKNOWN;
    }
#endif
    if (index > 1) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *device = (nvmlDevice_t)(intptr_t)(index + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    return copy_text(name, length, device_index(device) == 0 ? "Fake GPU 9000" : "Fake GPU 100");
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    if (device_index(device) != 0) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    return copy_text(uuid, length, "GPU-00000000-fake-0000-0000-000000000000");
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    memory->total = device_index(device) == 0 ? 24 * GIB : 8 * GIB;
    memory->used = device_index(device) == 0 ? 6 * GIB : 0;
    memory->reserved = 0;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *rates) {
    if (device_index(device) != 0) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    rates->gpu = 37;
    rates->memory = 25;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    if (device_index(device) != 0 || sensor != 0) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    *temp = 55;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *milliwatts) {
    if (device_index(device) != 0) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    *milliwatts = 123456;
    return NVML_SUCCESS;
}

/* Answer with `listed`: the count alone when `infos` is null (as NVML
 * does, INSUFFICIENT_SIZE), else as many as fit. */
static nvmlReturn_t processes(const nvmlProcessInfo_t *listed, unsigned int n,
                              unsigned int *count, nvmlProcessInfo_t *infos) {
    if (infos == NULL || *count < n) {
        *count = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(infos, listed, n * sizeof *listed);
    *count = n;
    return NVML_SUCCESS;
}

/* GPU 0: pid 4242 computes with 4 GiB and draws with 1 GiB (one
 * allocation: the agent keeps the larger), pid 4343's use is not known. */
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    static const nvmlProcessInfo_t listed[] = {
        {4242, 4 * GIB, 0xFFFFFFFF, 0xFFFFFFFF},
        {4343, NOT_AVAILABLE, 0xFFFFFFFF, 0xFFFFFFFF},
    };
    return processes(listed, device_index(device) == 0 ? 2 : 0, count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                       nvmlProcessInfo_t *infos) {
    static const nvmlProcessInfo_t listed[] = {
        {4242, 1 * GIB, 0xFFFFFFFF, 0xFFFFFFFF},
    };
    return processes(listed, device_index(device) == 0 ? 1 : 0, count, infos);
}
