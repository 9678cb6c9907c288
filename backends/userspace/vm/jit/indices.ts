// Indices every part of the compiler agrees on: the locals of a compiled function (its parameters
// r1..r5 and depth, then the registers and scratch), the module's globals and its imported functions.

// locals
export const P_DEPTH = 5;
const L_R0 = 6;
const L_R6 = 7; // r6..r9 = 7..10
export const L_R10 = 11;
export const L_T0 = 12;
export const L_T1 = 13;
export const L_B = 14;
export const L_LABEL = 15;
export const L_A = 16;
export const L_FP = 17;
export const L_RLO = 18;
export const L_RLIM = 19;
export const L_WLO = 20;
export const L_WLIM = 21;
export const L_SAVE = 22;
export const L_C = 23;
export const L_I0 = 24;
export const L_I1 = 25;
export const L_I2 = 26;
export const L_N = 27;
export const L_V = 28;
export const L_CNT = 29;
export const L_RF = 30;
export const REG = [L_R0, 0, 1, 2, 3, 4, L_R6, L_R6 + 1, L_R6 + 2, L_R6 + 3, L_R10];

// globals
export const G_BUDGET = 0;
export const G_TC = 1;

// imported functions
export const F_FAULT_BUDGET = 0;
export const F_FAULT_STACK = 1;
export const F_FAULT_MEM = 2;
export const F_TAIL = 3;
export const F_CALLX = 4;
export const F_LDABS = 5;
