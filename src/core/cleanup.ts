/**
 * Clean-up that must happen even when the process is interrupted: on SIGINT,
 * SIGTERM or SIGHUP the registered actions run (synchronously, newest first),
 * then the process exits with the conventional 128+signal code.
 */
const actions = new Map<number, () => void>();
let nextId = 1;
let installed = false;

const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

function runAll(): void {
  for (const id of [...actions.keys()].reverse()) {
    const action = actions.get(id);
    actions.delete(id);
    try {
      action?.();
    } catch {
      // keep going: the other actions matter as much
    }
  }
}

/** Registers an action; call the returned function once the action is no longer needed. */
export function onInterrupt(action: () => void): () => void {
  if (!installed) {
    installed = true;
    for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES)) {
      process.on(signal, () => {
        runAll();
        process.exit(code);
      });
    }
    process.on("exit", runAll);
  }
  const id = nextId++;
  actions.set(id, action);
  return () => {
    actions.delete(id);
  };
}
