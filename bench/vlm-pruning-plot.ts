// The vision-pruning table as a line plot (SVG, no dependencies): accuracy against the image tokens
// the language model reads, one line per method from the unpruned point. bench/vlm-pruning.ts
// writes it beside the table;
//   npx tsx bench/vlm-pruning-plot.ts bench/results/vlm-pruning-<adapter>.md
// redraws it from a committed table.
import { readFileSync, writeFileSync } from 'node:fs';

export interface PruningPoint {
  method: string;
  /** Image tokens the language model reads (FastV, ToDRE: in the layers above K). */
  tokens: number;
  /** 0..1 */
  accuracy: number;
}

const colours = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

export function pruningPlot(points: PruningPoint[], title: string): string {
  const width = 760, height = 420, left = 60, right = 150, top = 40, bottom = 50;
  const base = points.find((p) => p.method === 'none')!;
  const fewest = Math.min(...points.map((p) => p.tokens));
  const x = (tokens: number) => left + (Math.log2(base.tokens / tokens) / Math.log2((base.tokens / fewest) * 1.1)) * (width - left - right);
  const accuracies = points.map((p) => p.accuracy);
  const lo = Math.max(0, Math.floor(Math.min(...accuracies) * 10) / 10 - 0.1), hi = Math.min(1, Math.ceil(Math.max(...accuracies) * 10) / 10 + 0.1);
  const y = (a: number) => top + ((hi - a) / (hi - lo)) * (height - top - bottom);
  const methods = [...new Set(points.map((p) => p.method))].filter((m) => m !== 'none');
  const lines = methods.map((method, i) => {
    const xy = [base, ...points.filter((p) => p.method === method)].map((p) => [x(p.tokens), y(p.accuracy)]);
    const path = xy.map(([px, py], j) => `${j ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
    const colour = colours[i % colours.length];
    return `<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>${xy.map(([px, py]) => `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${colour}"/>`).join('')}<text x="${width - right + 12}" y="${top + 14 + i * 22}" fill="${colour}">${method}</text>`;
  });
  const xTicks = [...new Set(points.map((p) => p.tokens))].map((k) => `<line x1="${x(k)}" x2="${x(k)}" y1="${top}" y2="${height - bottom}" stroke="#eee"/><text x="${x(k)}" y="${height - bottom + 18}" text-anchor="middle">${k}</text>`);
  const yTicks = Array.from({ length: Math.round((hi - lo) * 10) + 1 }, (_, i) => lo + i / 10).map((a) => `<line x1="${left}" x2="${width - right}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${left - 6}" y="${y(a) + 4}" text-anchor="end">${Math.round(a * 100)}%</text>`);
  const goal = y(0.95 * base.accuracy);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="22" font-size="14" font-weight="bold">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>
${xTicks.join('\n')}
${yTicks.join('\n')}
<line x1="${left}" x2="${width - right}" y1="${goal}" y2="${goal}" stroke="#999" stroke-dasharray="4 3"/><text x="${width - right + 12}" y="${goal + 4}" fill="#666">95% of unpruned</text>
${lines.join('\n')}
<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">image tokens the language model reads (FastV, ToDRE: above layer K)</text>
<text x="16" y="${(top + height - bottom) / 2}" transform="rotate(-90 16 ${(top + height - bottom) / 2})" text-anchor="middle">accuracy on the held-out questions</text>
</svg>
`;
}

/** Points from the table bench/vlm-pruning.ts writes (method | image tokens read | accuracy | ...). */
export function pointsFromTable(markdown: string): PruningPoint[] {
  const section = markdown.split('\nPruned:')[1] ?? '';
  return section.split('\n').filter((l) => /^\| [a-z]+ \| \d+/.test(l)).map((line) => {
    const [method, read, accuracy] = line.split('|').slice(1, 4).map((c) => c.trim());
    const deeper = /\((\d+) above/.exec(read);
    return { method, tokens: Number(deeper ? deeper[1] : read), accuracy: Number(accuracy.replace(/%$/, '')) / 100 };
  });
}

if (process.argv[1]?.endsWith('vlm-pruning-plot.ts')) {
  for (const path of process.argv.slice(2)) {
    const markdown = readFileSync(path, 'utf8');
    const questions = /; (\d+) questions/.exec(markdown)?.[1];
    writeFileSync(path.replace(/\.md$/, '.svg'), pruningPlot(pointsFromTable(markdown), `VLM accuracy against image tokens kept (${questions} held-out questions)`));
    console.log(`wrote ${path.replace(/\.md$/, '.svg')}`);
  }
}
