// The KV-cache quality table as a scatter plot (SVG, no dependencies): top-1 agreement with the
// full cache against memory saved, one point per configuration, labelled with its perplexity
// change. bench/kv.ts writes it beside the table;
//   npx tsx bench/kv-plot.ts bench/results/kv-<adapter>.md
// redraws it from a committed table.
import { readFileSync, writeFileSync } from 'node:fs';

export interface KvPoint {
  label: string;
  /** Memory saved against the full f32 cache. */
  ratio: number;
  /** Top-1 agreement with the full f32 cache, 0..1. */
  agreement: number;
  /** Perplexity change against the full cache, as printed ('+0.3%'). */
  change: string;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function kvPlot(points: KvPoint[], title: string): string {
  const width = 860, height = 440, left = 70, right = 300, top = 40, bottom = 50;
  const x = (ratio: number) => left + (Math.log2(ratio) / Math.log2(16)) * (width - left - right);
  const lo = Math.min(0.5, Math.floor(Math.min(...points.map((p) => p.agreement)) * 10) / 10);
  const y = (a: number) => top + ((1 - a) / (1 - lo)) * (height - top - bottom);
  const colours = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04', '#be185d', '#65a30d'];
  const names = [...new Set(points.map((p) => p.label))];
  const colour = (label: string) => colours[names.indexOf(label) % colours.length];
  const marks = points.map((p) => `<circle cx="${x(p.ratio).toFixed(1)}" cy="${y(p.agreement).toFixed(1)}" r="5" fill="${colour(p.label)}" opacity="0.85"><title>${escape(`${p.label}: ${p.ratio}x, ${(p.agreement * 100).toFixed(1)}% top-1, perplexity ${p.change}`)}</title></circle>`);
  const legend = names.map((name, i) => {
    const changes = points.filter((p) => p.label === name).map((p) => `${p.ratio.toFixed(1)}x: ${p.change}`).join(', ');
    return `<circle cx="${width - right + 16}" cy="${top + 8 + i * 30}" r="5" fill="${colour(name)}"/><text x="${width - right + 28}" y="${top + 12 + i * 30}">${escape(name)}</text><text x="${width - right + 28}" y="${top + 25 + i * 30}" fill="#666" font-size="10">perplexity ${escape(changes)}</text>`;
  });
  const xTicks = [1, 2, 4, 8, 16].map((r) => `<line x1="${x(r)}" x2="${x(r)}" y1="${top}" y2="${height - bottom}" stroke="#eee"/><text x="${x(r)}" y="${height - bottom + 18}" text-anchor="middle">${r}x</text>`);
  const yTicks = Array.from({ length: Math.round((1 - lo) * 10) + 1 }, (_, i) => lo + i / 10).map((a) => `<line x1="${left}" x2="${width - right}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${left - 6}" y="${y(a) + 4}" text-anchor="end">${Math.round(a * 100)}%</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>
${xTicks.join('\n')}
${yTicks.join('\n')}
${marks.join('\n')}
${legend.join('\n')}
<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">KV memory saved (vs the full f32 cache)</text>
<text x="16" y="${(top + height - bottom) / 2}" transform="rotate(-90 16 ${(top + height - bottom) / 2})" text-anchor="middle">top-1 agreement with the full cache</text>
</svg>
`;
}

/** Points from the quality table written by bench/kv.ts (cache | budget | memory saved | perplexity | vs full | top-1). */
export function pointsFromTable(markdown: string): KvPoint[] {
  // Memory-saving rows only: the selection policies' subsection (`### `) saves no memory.
  const section = markdown.split('## Quality against memory')[1]?.split('\n## ')[0]?.split('\n### ')[0] ?? '';
  return section.split('\n').filter((l) => /^\| .* \| \d+\.\d+% \|$/.test(l)).map((line) => {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    return { label: cells[0], ratio: Number(cells[2].replace(/x$/, '')), change: cells[4], agreement: Number(cells[5].replace(/%$/, '')) / 100 };
  });
}

if (process.argv[1]?.endsWith('kv-plot.ts')) {
  for (const path of process.argv.slice(2)) {
    const markdown = readFileSync(path, 'utf8');
    const title = `${markdown.split('\n')[0].replace(/^# /, '')}: top-1 agreement against memory saved`;
    writeFileSync(path.replace(/\.md$/, '.svg'), kvPlot(pointsFromTable(markdown), title));
    console.log(`wrote ${path.replace(/\.md$/, '.svg')}`);
  }
}
