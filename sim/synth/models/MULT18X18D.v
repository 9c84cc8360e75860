// Behavioural model of the ECP5 sysDSP MULT18X18D, as far as gen/ecp5_dsp.py configures it: an 18x18
// multiplier with optional A/B input and P output registers clocked by CLK0, each with its own CE0..3 and
// RST0..3 selection (synchronous reset to 0 over clock enable, RESETMODE = "SYNC"; registers power up at 0).
// Only for co-simulating packed netlists against the RTL (tests/test_synth.py): the C input, the shift
// chains, the pipeline register and the cascade are not modelled and must be unused.
module MULT18X18D(
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20,
    output P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [3:0] ce = {CE3, CE2, CE1, CE0};
    wire [3:0] rst = {RST3, RST2, RST1, RST0};
    function integer sel(input [39:0] name);   // "CE0".."CE3" / "RST0".."RST3" -> 0..3
        sel = name[7:0] - "0";
    endfunction

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_q = 0, b_q = 0;
    reg [35:0] p_q = 0;
    always @(posedge CLK0) begin
        if (rst[sel(REG_INPUTA_RST)]) a_q <= 0; else if (ce[sel(REG_INPUTA_CE)]) a_q <= a;
        if (rst[sel(REG_INPUTB_RST)]) b_q <= 0; else if (ce[sel(REG_INPUTB_CE)]) b_q <= b;
    end
    wire [17:0] a_in = (REG_INPUTA_CLK == "NONE") ? a : a_q;
    wire [17:0] b_in = (REG_INPUTB_CLK == "NONE") ? b : b_q;
    wire signed [18:0] a_ext = {SIGNEDA & a_in[17], a_in};
    wire signed [18:0] b_ext = {SIGNEDB & b_in[17], b_in};
    wire signed [37:0] product = a_ext * b_ext;
    always @(posedge CLK0)
        if (rst[sel(REG_OUTPUT_RST)]) p_q <= 0; else if (ce[sel(REG_OUTPUT_CE)]) p_q <= product[35:0];
    wire [35:0] p = (REG_OUTPUT_CLK == "NONE") ? product[35:0] : p_q;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16,
            P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
