// The speculative-decoding table as a bar chart (SVG, no dependencies): decode speed against
// plain decoding per strategy, with the 1x line. bench/speculative.ts writes it beside the table;
//   npx tsx bench/speculative-plot.ts bench/results/speculative-<adapter>.md
// redraws it from a committed table.
import { readFileSync, writeFileSync } from 'node:fs';

export interface PlotRow {
  label: string;
  /** Decode tokens/s over plain decoding's in the same run. */
  ratio: number;
  /** Tokens per target pass. */
  tokensPerStep: number;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function speculativePlot(rows: PlotRow[], title: string): string {
  const labelWidth = 520, barWidth = 360, rowHeight = 22, top = 40, left = 10;
  const max = Math.max(2, ...rows.map((r) => r.ratio));
  const x = (ratio: number) => left + labelWidth + (ratio / max) * barWidth;
  const height = top + rows.length * rowHeight + 30;
  const bars = rows.map((r, i) => {
    const y = top + i * rowHeight;
    const fill = r.ratio >= 1 ? '#3b82f6' : '#f97316';
    return [
      `<text x="${left + labelWidth - 8}" y="${y + 15}" text-anchor="end">${escape(r.label)}</text>`,
      `<rect x="${x(0)}" y="${y + 3}" width="${Math.max(1, x(r.ratio) - x(0)).toFixed(1)}" height="${rowHeight - 6}" fill="${fill}"/>`,
      `<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + 15}">${r.ratio.toFixed(2)}x · ${r.tokensPerStep.toFixed(2)} tok/pass</text>`,
    ].join('');
  });
  const ticks = Array.from({ length: Math.floor(max * 2) + 1 }, (_, i) => i / 2).map((t) =>
    `<line x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${height - 26}" stroke="${t === 1 ? '#111' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/><text x="${x(t)}" y="${height - 10}" text-anchor="middle">${t}x</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + labelWidth + barWidth + 170}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>
${ticks.join('\n')}
${bars.join('\n')}
</svg>
`;
}

/** Rows of a table written by bench/speculative.ts (strategy, tokens per step, ..., vs plain, ...). */
export function rowsFromTable(markdown: string): PlotRow[] {
  const lines = markdown.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| strategy') && !l.startsWith('|---'));
  return lines.map((line) => {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const ratio = cells.find((c) => /^\d+\.\d+x$/.test(c));
    return { label: cells[0], tokensPerStep: Number(cells[1]), ratio: Number(ratio?.slice(0, -1)) };
  });
}

if (process.argv[1]?.endsWith('speculative-plot.ts')) {
  for (const path of process.argv.slice(2)) {
    const markdown = readFileSync(path, 'utf8');
    const title = markdown.split('\n')[0].replace(/^# /, '');
    writeFileSync(path.replace(/\.md$/, '.svg'), speculativePlot(rowsFromTable(markdown), `${title}: decode speed against plain decoding`));
    console.log(`wrote ${path.replace(/\.md$/, '.svg')}`);
  }
}
