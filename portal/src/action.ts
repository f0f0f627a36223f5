// One way every page runs a member's action (sign, submit, check the receipt): one at a time,
// the buttons disabled meanwhile, and any failure shown as one sentence.
import { useState } from "preact/hooks";

export function useAction() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string>();
  const act = async (f: () => Promise<void>) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await f();
    } catch (e) {
      setProblem(String(e instanceof Error ? e.message : e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, problem, setProblem, act };
}
