import { WIZARD_STEPS, type WizardStepId } from "../../lib/activation.ts";

/** Where the wizard stands: done, current and coming steps. */
export function Steps({ current }: { current: WizardStepId }) {
  const at = WIZARD_STEPS.findIndex((s) => s.id === current);
  return (
    <ol className="steps" aria-label="Activation steps">
      {WIZARD_STEPS.map((step, i) => (
        <li key={step.id} className={i < at ? "done" : i === at ? "current" : undefined} aria-current={i === at ? "step" : undefined}>
          {i + 1}. {step.title}
        </li>
      ))}
    </ol>
  );
}
