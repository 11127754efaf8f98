package shim

import (
	"context"

	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// taskV2 serves the task API v2 (containerd.task.v2.Task), which containerd
// 1.7 speaks and 2.0-2.2 use for shims that answer start with version 2. The
// v2 and v3 messages have the same fields, so each call is converted through
// the wire format and served by the v3 service: one code path for both.
type taskV2 struct {
	s taskAPI.TTRPCTaskService
}

// call converts a v2 request to its v3 twin, runs it, and converts the v3
// response back.
func call[In, Out, In3, Out3 proto.Message](ctx context.Context, r In, in3 In3, out Out, f func(context.Context, In3) (Out3, error)) (Out, error) {
	if err := convert(r, in3); err != nil {
		var zero Out
		return zero, err
	}
	resp, err := f(ctx, in3)
	if err != nil {
		var zero Out
		return zero, err
	}
	if err := convert(resp, out); err != nil {
		var zero Out
		return zero, err
	}
	return out, nil
}

func convert(from, to proto.Message) error {
	b, err := proto.Marshal(from)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, to)
}

func (t taskV2) State(ctx context.Context, r *taskv2.StateRequest) (*taskv2.StateResponse, error) {
	return call(ctx, r, &taskAPI.StateRequest{}, &taskv2.StateResponse{}, t.s.State)
}

func (t taskV2) Create(ctx context.Context, r *taskv2.CreateTaskRequest) (*taskv2.CreateTaskResponse, error) {
	return call(ctx, r, &taskAPI.CreateTaskRequest{}, &taskv2.CreateTaskResponse{}, t.s.Create)
}

func (t taskV2) Start(ctx context.Context, r *taskv2.StartRequest) (*taskv2.StartResponse, error) {
	return call(ctx, r, &taskAPI.StartRequest{}, &taskv2.StartResponse{}, t.s.Start)
}

func (t taskV2) Delete(ctx context.Context, r *taskv2.DeleteRequest) (*taskv2.DeleteResponse, error) {
	return call(ctx, r, &taskAPI.DeleteRequest{}, &taskv2.DeleteResponse{}, t.s.Delete)
}

func (t taskV2) Pids(ctx context.Context, r *taskv2.PidsRequest) (*taskv2.PidsResponse, error) {
	return call(ctx, r, &taskAPI.PidsRequest{}, &taskv2.PidsResponse{}, t.s.Pids)
}

func (t taskV2) Pause(ctx context.Context, r *taskv2.PauseRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.PauseRequest{}, &emptypb.Empty{}, t.s.Pause)
}

func (t taskV2) Resume(ctx context.Context, r *taskv2.ResumeRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ResumeRequest{}, &emptypb.Empty{}, t.s.Resume)
}

func (t taskV2) Checkpoint(ctx context.Context, r *taskv2.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.CheckpointTaskRequest{}, &emptypb.Empty{}, t.s.Checkpoint)
}

func (t taskV2) Kill(ctx context.Context, r *taskv2.KillRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.KillRequest{}, &emptypb.Empty{}, t.s.Kill)
}

func (t taskV2) Exec(ctx context.Context, r *taskv2.ExecProcessRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ExecProcessRequest{}, &emptypb.Empty{}, t.s.Exec)
}

func (t taskV2) ResizePty(ctx context.Context, r *taskv2.ResizePtyRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ResizePtyRequest{}, &emptypb.Empty{}, t.s.ResizePty)
}

func (t taskV2) CloseIO(ctx context.Context, r *taskv2.CloseIORequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.CloseIORequest{}, &emptypb.Empty{}, t.s.CloseIO)
}

func (t taskV2) Update(ctx context.Context, r *taskv2.UpdateTaskRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.UpdateTaskRequest{}, &emptypb.Empty{}, t.s.Update)
}

func (t taskV2) Wait(ctx context.Context, r *taskv2.WaitRequest) (*taskv2.WaitResponse, error) {
	return call(ctx, r, &taskAPI.WaitRequest{}, &taskv2.WaitResponse{}, t.s.Wait)
}

func (t taskV2) Stats(ctx context.Context, r *taskv2.StatsRequest) (*taskv2.StatsResponse, error) {
	return call(ctx, r, &taskAPI.StatsRequest{}, &taskv2.StatsResponse{}, t.s.Stats)
}

func (t taskV2) Connect(ctx context.Context, r *taskv2.ConnectRequest) (*taskv2.ConnectResponse, error) {
	return call(ctx, r, &taskAPI.ConnectRequest{}, &taskv2.ConnectResponse{}, t.s.Connect)
}

func (t taskV2) Shutdown(ctx context.Context, r *taskv2.ShutdownRequest) (*emptypb.Empty, error) {
	return call(ctx, r, &taskAPI.ShutdownRequest{}, &emptypb.Empty{}, t.s.Shutdown)
}
