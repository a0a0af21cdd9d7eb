"""KerasTuner search over beta and theta: a thin script over `rc_keras.tuning`.

Same arguments as ``rc-keras tune``:

```bash
python tuning/search_beta_theta.py --task two-sequence --tuner bayesian --max-trials 12 \\
    --directory runs/tune --objective budget --max-spike-time 15
```
"""

import sys

from rc_keras.tuning.cli import main

if __name__ == "__main__":
    sys.exit(main())
