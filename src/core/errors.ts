/** Exit codes: 1 for a failed build or check, 2 for bad usage or bad input. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** An error whose message is written for the user: what, where, and the fix. */
export class BronzeError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT_FAILURE, options?: ErrorOptions) {
    super(message, options);
    this.name = "BronzeError";
    this.exitCode = exitCode;
  }
}

/** Bad input: a file, a line or an item the user has to fix. Exit code 2. */
export class InputError extends BronzeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT_USAGE, options);
    this.name = "InputError";
  }
}

/** A step that ran and failed; `logTail` holds its last output lines. */
export class StepError extends BronzeError {
  readonly logTail: string;
  constructor(message: string, logTail = "", options?: ErrorOptions) {
    super(logTail ? `${message}\n--- last output ---\n${logTail}` : message, EXIT_FAILURE, options);
    this.name = "StepError";
    this.logTail = logTail;
  }
}
