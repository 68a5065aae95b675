// The built-in VLM's scenes, ported from tools/train/scenes.py: a few saturated shapes on a
// cluttered, textured 96 x 96 background, and the questions it was trained on (colour, shape,
// count, position, presence) with their answers. Same drawing and question templates; a seeded
// JS generator instead of numpy's, so the scenes are new ones of the same kind.

export const IMAGE_SIZE = 96;
export const SHAPES = ['circle', 'square', 'triangle'] as const;
export const COLORS: Record<string, [number, number, number]> = {
  red: [220, 40, 40], green: [40, 170, 60], blue: [50, 80, 230], yellow: [235, 205, 35], purple: [150, 60, 200],
};
const COLOR_NAMES = Object.keys(COLORS);
const COUNT_WORDS = ['zero', 'one', 'two', 'three', 'four'];
export const QUESTION_TYPES = ['color', 'shape', 'count', 'position', 'exists'] as const;

export interface SceneObject { shape: (typeof SHAPES)[number]; color: string; x: number; y: number; r: number }
export interface Question { type: (typeof QUESTION_TYPES)[number] | 'describe'; question: string; answer: string }
export interface Scene { rgb: Uint8Array; objects: SceneObject[]; questions: Question[]; seed: number }

/** The request for a description; its answer names every object (scenes.py's describe). */
export const DESCRIBE = 'Describe the scene.';

/** The training prompt around a question. */
export const promptText = (question: string) => `Question: ${question} Answer:`;

/** A small seeded generator (mulberry32) with numpy's draws that the scenes use. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * next();
  const normal = (mean: number, std: number) => mean + std * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const integer = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo)); // [lo, hi)
  return { next, uniform, normal, integer };
}
type Random = ReturnType<typeof random>;

function background(rng: Random): Float32Array {
  const s = IMAGE_SIZE;
  const img = new Float32Array(s * s * 3);
  const base = [0, 1, 2].map(() => rng.uniform(70, 170) * rng.uniform(0.8, 1.2));
  for (let p = 0; p < s * s; p++) for (let c = 0; c < 3; c++) img[p * 3 + c] = base[c];
  for (let k = 0; k < 3; k++) { // low-frequency shading
    const angle = rng.uniform(0, Math.PI), freq = rng.uniform(0.02, 0.12), phase = rng.uniform(0, 2 * Math.PI);
    const amplitude = [0, 1, 2].map(() => rng.uniform(-18, 18));
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const wave = Math.sin(freq * (x * Math.cos(angle) + y * Math.sin(angle)) + phase);
      for (let c = 0; c < 3; c++) img[(y * s + x) * 3 + c] += wave * amplitude[c];
    }
  }
  for (let i = 0; i < img.length; i++) img[i] += rng.normal(0, 10); // grain
  const lines = rng.integer(6, 14);
  for (let k = 0; k < lines; k++) { // clutter: thin muted lines
    const x0 = rng.uniform(0, s), y0 = rng.uniform(0, s);
    const angle = rng.uniform(0, 2 * Math.PI), length = rng.uniform(8, 40);
    let gray = 0;
    for (const v of img) gray += v;
    gray /= img.length;
    const tint = [0, 1, 2].map(() => 0.7 * gray + 0.3 * rng.uniform(0, 255));
    const steps = Math.floor(length * 2);
    for (let i = 0; i < steps; i++) {
      const t = steps > 1 ? i / (steps - 1) : 0;
      const x = Math.min(s - 1, Math.max(0, Math.trunc(x0 + t * length * Math.cos(angle))));
      const y = Math.min(s - 1, Math.max(0, Math.trunc(y0 + t * length * Math.sin(angle))));
      for (let c = 0; c < 3; c++) img[(y * s + x) * 3 + c] = tint[c];
    }
  }
  return img;
}

function inside(shape: SceneObject['shape'], cx: number, cy: number, r: number, x: number, y: number): boolean {
  if (shape === 'circle') return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  if (shape === 'square') return Math.abs(x - cx) <= r * 0.85 && Math.abs(y - cy) <= r * 0.85;
  const top = cy - r, bottom = cy + 0.8 * r;
  return y >= top && y <= bottom && Math.abs(x - cx) <= ((y - top) / (bottom - top)) * r;
}

/** A scene of 1-4 shapes (no shape-colour pair twice, none overlapping) and a question of each type that fits. */
export function makeScene(seed = Math.floor(Math.random() * 2 ** 31)): Scene {
  const rng = random(seed);
  const img = background(rng);
  const count = rng.integer(1, 5);
  const pairs = SHAPES.flatMap((shape) => COLOR_NAMES.map((color) => ({ shape, color })));
  for (let i = pairs.length - 1; i > 0; i--) { // shuffle, then take the first `count`
    const j = rng.integer(0, i + 1);
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  const objects: SceneObject[] = [];
  for (const { shape, color } of pairs.slice(0, count)) {
    let r = 0, cx = 0, cy = 0;
    for (let attempt = 0; attempt < 100; attempt++) { // place without overlapping the others
      r = rng.uniform(6, 10);
      cx = rng.uniform(r + 2, IMAGE_SIZE - r - 2);
      cy = rng.uniform(r + 2, IMAGE_SIZE - r - 2);
      if (objects.every((o) => (cx - o.x) ** 2 + (cy - o.y) ** 2 > (r + o.r + 3) ** 2)) break;
    }
    for (let y = 0; y < IMAGE_SIZE; y++) for (let x = 0; x < IMAGE_SIZE; x++) {
      if (!inside(shape, cx, cy, r, x, y)) continue;
      for (let c = 0; c < 3; c++) img[(y * IMAGE_SIZE + x) * 3 + c] = COLORS[color][c] + rng.normal(0, 8);
    }
    objects.push({ shape, color, x: cx, y: cy, r });
  }
  const rgb = Uint8Array.from(img, (v) => Math.min(255, Math.max(0, Math.trunc(v))));
  const questions = QUESTION_TYPES.map((type) => ask(rng, objects, type)).filter((q): q is Question => q !== null);
  questions.push({ type: 'describe', question: DESCRIBE, answer: describe(objects) });
  return { rgb, objects, questions, seed };
}

/** Left or right of the centre, or middle within 6 px of it (too close to ask about); scenes.py's side. */
const side = (o: SceneObject) => (o.x < IMAGE_SIZE / 2 - 6 ? 'left' : o.x > IMAGE_SIZE / 2 + 6 ? 'right' : 'middle');

/** Every object's colour, shape and side, ordered by colour then shape (scenes.py's describe). */
export function describe(objects: SceneObject[]): string {
  const order = (o: SceneObject) => COLOR_NAMES.indexOf(o.color) * SHAPES.length + SHAPES.indexOf(o.shape);
  return `${[...objects].sort((a, b) => order(a) - order(b)).map((o) => `${o.color} ${o.shape} ${side(o)}`).join(', ')}.`;
}

/** A question of `type` about the scene with its answer, or null where that type does not fit (scenes.py's ask). */
export function ask(rng: Random, objects: SceneObject[], type: Question['type']): Question | null {
  const pick = <T>(items: T[]) => items[rng.integer(0, items.length)];
  const shapes = objects.map((o) => o.shape);
  const colors = objects.map((o) => o.color);
  if (type === 'color') {
    const unique = objects.filter((o) => shapes.filter((s) => s === o.shape).length === 1);
    if (!unique.length) return null;
    const o = pick(unique);
    return { type, question: `What color is the ${o.shape}?`, answer: o.color };
  }
  if (type === 'shape') {
    const unique = objects.filter((o) => colors.filter((c) => c === o.color).length === 1);
    if (!unique.length) return null;
    const o = pick(unique);
    return { type, question: `What shape is ${o.color}?`, answer: o.shape };
  }
  if (type === 'count') return { type, question: 'How many shapes are there?', answer: COUNT_WORDS[objects.length] };
  if (type === 'position') {
    const clear = objects.filter((o) => side(o) !== 'middle');
    if (!clear.length) return null;
    const o = pick(clear);
    return { type, question: `Is the ${o.color} ${o.shape} on the left or the right?`, answer: side(o) };
  }
  const present = objects.map((o) => `${o.shape} ${o.color}`);
  if (rng.next() < 0.5) {
    const [shape, color] = pick([...present].sort()).split(' ');
    return { type, question: `Is there a ${color} ${shape}?`, answer: 'yes' };
  }
  const absent = SHAPES.flatMap((s) => COLOR_NAMES.map((c) => `${s} ${c}`)).filter((p) => !present.includes(p));
  const [shape, color] = pick(absent).split(' ');
  return { type, question: `Is there a ${color} ${shape}?`, answer: 'no' };
}

/** Questions for any image (an upload): the templates with every shape and colour. */
export const GENERIC_QUESTIONS = [
  'How many shapes are there?',
  ...SHAPES.map((s) => `What color is the ${s}?`),
  ...COLOR_NAMES.map((c) => `What shape is ${c}?`),
  'Is there a red circle?',
  'Is the blue square on the left or the right?',
  DESCRIBE,
];
