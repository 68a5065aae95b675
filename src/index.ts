// tokenwise: the public ES module. The engine API (createEngine) comes with the engine; for now
// the GPU layer and kernels are the public surface.
export { requestGpu, Gpu, GpuError, type GpuErrorKind, type GpuFeatures, type RequestGpuOptions } from './gpu';
