export { BINDING_ALIGN, Gpu, STORAGE, align, grid, type Binding, type GpuFeatures } from './gpu';
export { requestGpu, type RequestGpuOptions } from './device';
export { GpuError, check, type GpuErrorKind } from './errors';
