/**
 * Squarified treemap layout (Bruls, Huizing, van Wijk, 2000): rectangles with areas in
 * proportion to the values, as close to squares as the order allows. Pure.
 */

export interface TreemapItem {
  label: string;
  value: number;
}

export interface TreemapCell extends TreemapItem {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The worst aspect ratio of a row of areas laid along a side of length `side`. */
function worst(row: readonly number[], side: number): number {
  const sum = row.reduce((a, b) => a + b, 0);
  const max = Math.max(...row);
  const min = Math.min(...row);
  return Math.max((side * side * max) / (sum * sum), (sum * sum) / (side * side * min));
}

export function squarify(items: readonly TreemapItem[], width: number, height: number): TreemapCell[] {
  const positive = items.filter((i) => i.value > 0).sort((a, b) => b.value - a.value);
  const total = positive.reduce((a, i) => a + i.value, 0);
  if (total === 0 || width <= 0 || height <= 0) return [];
  const scale = (width * height) / total;
  const cells: TreemapCell[] = [];
  let rect: Rect = { x: 0, y: 0, w: width, h: height };
  let row: TreemapItem[] = [];
  const areas = (r: readonly TreemapItem[]) => r.map((i) => i.value * scale);

  const layRow = (r: readonly TreemapItem[]) => {
    const sum = areas(r).reduce((a, b) => a + b, 0);
    if (rect.w >= rect.h) {
      // a column on the left
      const w = sum / rect.h;
      let y = rect.y;
      for (const item of r) {
        const h = (item.value * scale) / w;
        cells.push({ ...item, x: rect.x, y, w, h });
        y += h;
      }
      rect = { x: rect.x + w, y: rect.y, w: rect.w - w, h: rect.h };
    } else {
      // a row at the top
      const h = sum / rect.w;
      let x = rect.x;
      for (const item of r) {
        const w = (item.value * scale) / h;
        cells.push({ ...item, x, y: rect.y, w, h });
        x += w;
      }
      rect = { x: rect.x, y: rect.y + h, w: rect.w, h: rect.h - h };
    }
  };

  for (const item of positive) {
    const side = Math.min(rect.w, rect.h);
    if (row.length === 0 || worst(areas([...row, item]), side) <= worst(areas(row), side)) {
      row.push(item);
    } else {
      layRow(row);
      row = [item];
    }
  }
  if (row.length) layRow(row);
  return cells;
}
