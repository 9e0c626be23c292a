import { InvalidArgumentError } from "commander";

/** A parser for a whole-number option from `min` to `max`; anything else is refused with `hint`. */
export function wholeNumberOption(min: number, max: number, hint: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(hint);
    return n;
  };
}
