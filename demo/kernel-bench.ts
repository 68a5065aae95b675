// The demo's kernel-bench panel: the page's own WebGPU device, and the kernel benchmark live on it.
import { type BenchRow, runSuite } from '../bench/report';
import { benchCases } from '../bench/suite';
import { type Gpu, requestGpu } from '../src/gpu';

const info = document.getElementById('device-info')!;
const button = document.getElementById('run-bench') as HTMLButtonElement;
const output = document.getElementById('bench-output')!;

function percent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–';
}

function showRows(rows: BenchRow[], header: string): void {
  const table = document.createElement('table');
  table.innerHTML = '<thead><tr><th>kernel</th><th>ms</th><th>GB/s</th><th>GFLOP/s</th><th>of copy BW</th><th>of FMA</th></tr></thead>';
  const body = table.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const cell of [r.name, r.error ? 'failed' : r.ms.toFixed(3), r.gbps.toFixed(2), r.gflops.toFixed(2), percent(r.ofCopy), percent(r.ofFma)]) tr.insertCell().textContent = cell;
  }
  const caption = document.createElement('p');
  caption.textContent = header;
  output.replaceChildren(caption, table);
}

async function runBench(gpu: Gpu): Promise<void> {
  button.disabled = true;
  const rows: BenchRow[] = [];
  try {
    const report = await runSuite(gpu, benchCases({ quick: true }), 'this browser', {
      quick: true,
      onRow: (row) => {
        rows.push(row);
        showRows(rows, `Running… ${rows.length} kernels measured`);
      },
    });
    showRows(report.rows, `Copy bandwidth ${report.copyGBps.toFixed(2)} GB/s, FMA ${report.fmaGflops.toFixed(2)} GFLOP/s, measured in this run (${report.timing} timing).`);
  } catch (error) {
    output.textContent = `Benchmark failed: ${error instanceof Error ? error.message : String(error)}`;
    output.className = 'error';
  } finally {
    button.disabled = false;
  }
}

export async function startKernelBench(): Promise<void> {
  try {
    const gpu = await requestGpu();
    const features = Object.entries(gpu.features).map(([name, on]) => `${name}: ${on ? 'yes' : 'no'}`).join(', ');
    info.textContent = `${gpu.adapterDescription} — ${features}; max storage binding ${(gpu.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup storage ${gpu.limits.maxComputeWorkgroupStorageSize} B`;
    button.disabled = false;
    button.addEventListener('click', () => void runBench(gpu));
  } catch (error) {
    info.className = 'error';
    info.textContent = String(error instanceof Error ? error.message : error);
  }
}
