import { InputError } from "../core/errors.ts";

/** One step of a build graph: it runs once every dependency has succeeded. */
export interface GraphNode {
  id: string;
  deps: readonly string[];
  run: () => Promise<void>;
}

export type NodeOutcome =
  | { status: "ok" }
  | { status: "failed"; error: unknown }
  /** not run: these failed nodes are upstream of it */
  | { status: "blocked"; by: string[] };

/** At most `slots` holders at once; the rest wait in arrival order. */
export class JobBudget {
  readonly slots: number;
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(slots: number) {
    this.slots = slots;
    if (!Number.isInteger(slots) || slots < 1) throw new InputError(`a job budget of ${slots} is not a whole number of at least 1`);
    this.free = slots;
  }

  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Dependencies must name nodes of the graph, and the graph must have no cycle. */
export function checkGraph(nodes: readonly Pick<GraphNode, "id" | "deps">[]): void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const node of nodes) {
    for (const dep of node.deps) if (!byId.has(dep)) throw new InputError(`build graph: '${node.id}' depends on unknown '${dep}'`);
  }
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === "done") return;
    if (state.get(id) === "visiting") throw new InputError(`build graph: cycle ${[...path, id].join(" -> ")}`);
    state.set(id, "visiting");
    for (const dep of byId.get(id)!.deps) visit(dep, [...path, id]);
    state.set(id, "done");
  };
  for (const node of nodes) visit(node.id, []);
}

/**
 * Runs every node whose dependencies succeeded, as many at once as the budget allows. A failure does not
 * stop independent nodes: it blocks only what depends on it, so one run reports every failure there is.
 */
export interface GraphEvents {
  /** a node got its slot and starts now */
  started?: (id: string) => void;
  /** a node ran, failed, or will not run */
  settled?: (id: string, outcome: NodeOutcome) => void;
}

export function runGraph(nodes: readonly GraphNode[], budget: JobBudget, events: GraphEvents = {}): Map<string, Promise<NodeOutcome>> {
  checkGraph(nodes);
  const outcomes = new Map<string, Promise<NodeOutcome>>();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const outcomeOf = (id: string): Promise<NodeOutcome> => {
    const known = outcomes.get(id);
    if (known) return known;
    const node = byId.get(id)!;
    const outcome = (async (): Promise<NodeOutcome> => {
      const upstream = await Promise.all(node.deps.map((dep) => outcomeOf(dep).then((o) => ({ dep, o }))));
      const by = new Set<string>();
      for (const { dep, o } of upstream) {
        if (o.status === "failed") by.add(dep);
        if (o.status === "blocked") o.by.forEach((b) => by.add(b));
      }
      if (by.size) return { status: "blocked", by: [...by].sort() };
      return budget.use(async () => {
        events.started?.(id);
        try {
          await node.run();
          return { status: "ok" } as const;
        } catch (error) {
          return { status: "failed", error } as const;
        }
      });
    })().then((settled) => {
      events.settled?.(id, settled);
      return settled;
    });
    outcomes.set(id, outcome);
    return outcome;
  };
  for (const node of nodes) outcomeOf(node.id);
  return outcomes;
}
